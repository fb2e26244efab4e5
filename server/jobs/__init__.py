"""REST API of the job queue: submit, list, inspect, cancel, and live progress over SSE."""
