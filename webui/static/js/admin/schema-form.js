// A form built from a JSON schema (pydantic's, as GET /api/datasets-settings-schema returns): nested
// objects become fieldsets, enums selects, booleans checkboxes, numbers number inputs, tuples and
// other values JSON text. Inputs are named by their path ("settings.quality.min_valid_fraction") so
// server errors land next to them.

import { el } from '../api.js';

function resolve(schema, root) {
  if (schema && schema.$ref) return resolve(root.$defs[schema.$ref.split('/').pop()], root);
  if (schema && schema.allOf && schema.allOf.length === 1) return { ...resolve(schema.allOf[0], root), ...schema, allOf: undefined };
  return schema || {};
}

/** The non-null variant of an anyOf [X, null], with `nullable` set. */
function unwrap(schema, root) {
  const s = resolve(schema, root);
  if (Array.isArray(s.anyOf)) {
    const options = s.anyOf.map((o) => resolve(o, root));
    const real = options.filter((o) => o.type !== 'null');
    if (real.length === 1) return { ...real[0], nullable: options.length > 1, default: s.default, description: s.description, title: s.title };
  }
  return s;
}

function fieldFor(name, path, schema, root, value) {
  const s = unwrap(schema, root);
  const label = s.title || name;
  const hint = s.description ? el('small', { class: 'muted' }, s.description) : null;
  if (s.type === 'object' && s.properties) {
    return el('fieldset', { class: 'schema-group' }, el('legend', {}, label),
      ...Object.entries(s.properties).map(([k, sub]) => fieldFor(k, `${path}.${k}`, sub, root, value ? value[k] : undefined)));
  }
  const current = value === undefined ? s.default : value;
  let input;
  if (Array.isArray(s.enum)) {
    input = el('select', { name: path, 'data-kind': 'enum' }, ...s.enum.map((v) => el('option', { value: v }, v)));
    input.value = current ?? s.enum[0];
  } else if (s.type === 'boolean') {
    input = el('input', { type: 'checkbox', name: path, 'data-kind': 'boolean' });
    input.checked = Boolean(current);
  } else if (s.type === 'number' || s.type === 'integer') {
    input = el('input', { type: 'number', name: path, step: 'any', 'data-kind': 'number', 'data-nullable': String(Boolean(s.nullable)) });
    input.value = current === null || current === undefined ? '' : String(current);
  } else if (s.type === 'string') {
    input = el('input', { name: path, 'data-kind': 'string', 'data-nullable': String(Boolean(s.nullable)) });
    input.value = current ?? '';
  } else {
    input = el('input', { name: path, 'data-kind': 'json', class: 'json' });
    // A field with a default factory has no "default" in the schema: start from an empty value of its type.
    const empty = s.type === 'object' ? {} : s.type === 'array' ? [] : null;
    input.value = JSON.stringify(current ?? (s.nullable ? null : empty));
  }
  return el('label', { class: 'schema-field' }, `${label} `, input, hint);
}

/** Build the fields of `schema` under `prefix` into `container`. */
export function buildSchemaForm(container, schema, prefix, values = {}) {
  container.replaceChildren(...Object.entries(schema.properties)
    .map(([k, sub]) => fieldFor(k, `${prefix}.${k}`, sub, schema, values[k])));
}

/** The object the fields under `prefix` describe (bad JSON or numbers are left for the server to name). */
export function readSchemaForm(container, prefix) {
  const out = {};
  for (const input of container.querySelectorAll('[data-kind]')) {
    const path = input.name.slice(prefix.length + 1).split('.');
    let value;
    const kind = input.dataset.kind;
    if (kind === 'boolean') value = input.checked;
    else if (kind === 'number') value = input.value === '' ? null : Number(input.value);
    else if (kind === 'json') { try { value = JSON.parse(input.value); } catch (_) { value = input.value; } }
    // An empty box of an optional text setting means "not set" (null), not an empty string.
    else if (kind === 'string') value = input.value === '' && input.dataset.nullable === 'true' ? null : input.value;
    else value = input.value;
    let node = out;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {});
    node[path[path.length - 1]] = value;
  }
  return out;
}
