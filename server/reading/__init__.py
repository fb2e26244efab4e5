"""Reading sessions and gaze streaming: REST API, ``/ws/gaze`` ingest, samples and heatmaps."""
