// WebGazer from this server (/vendor/webgazer/, npm package), with its face-mesh model files
// served from /vendor/webgazer/mediapipe/face_mesh: the webcam source needs no network at all.
// Also the camera check that turns getUserMedia failures into messages a reader understands.

const SCRIPT_URL = '/vendor/webgazer/webgazer.js';
const FACE_MESH_PATH = '/vendor/webgazer/mediapipe/face_mesh';

let loading = null;

/** Load (once) and configure the global WebGazer. Resolves to window.webgazer. */
export function loadWebGazer() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (window.webgazer) { resolve(window.webgazer); return; }
      const script = document.createElement('script');
      script.src = SCRIPT_URL;
      script.async = true;
      script.onload = () => (window.webgazer ? resolve(window.webgazer)
        : reject(new Error('WebGazer did not load')));
      script.onerror = () => reject(new Error(`could not load ${SCRIPT_URL} (run npm install in webui/)`));
      document.head.append(script);
    }).then((wg) => {
      wg.params.faceMeshSolutionPath = FACE_MESH_PATH;
      // Training data persists in this browser (IndexedDB) between the calibration page and
      // the reading pages, so a reader calibrates once per sitting, not once per case.
      wg.saveDataAcrossSessions(true);
      wg.showPredictionPoints(false);
      return wg;
    });
    loading.catch(() => { loading = null; });
  }
  return loading;
}

/** A camera problem with a reader-facing message; kind: unsupported|denied|no-camera|busy|failed. */
export class CameraError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** Map a getUserMedia failure to a CameraError. */
export function cameraError(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
    return new CameraError('denied', 'Camera permission was denied. Allow the camera for this site in the browser '
      + '(the camera icon in the address bar) and reload, or use another gaze source.');
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') {
    return new CameraError('no-camera', 'No camera was found. Connect a webcam and reload, or use another gaze source.');
  }
  if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') {
    return new CameraError('busy', 'The camera is in use by another program or could not start. Close other '
      + 'programs using it and reload, or use another gaze source.');
  }
  return new CameraError('failed', `The camera could not be opened (${name || err}).`);
}

/** Ask for the camera once (permission prompt) and release it; throws CameraError. */
export async function checkCamera() {
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== 'function') {
    throw new CameraError('unsupported', 'This browser cannot use a camera on this page. The webcam needs a '
      + 'secure page (https, or http://localhost) and a current browser; use another gaze source.');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    throw cameraError(err);
  }
  for (const track of stream.getTracks()) track.stop();
}

/** Stop every camera track WebGazer holds (webgazer.end() alone leaves the camera on). */
export function releaseCamera() {
  for (const video of document.querySelectorAll('video')) {
    const stream = video.srcObject;
    if (stream && typeof stream.getTracks === 'function') {
      for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
    }
  }
}
