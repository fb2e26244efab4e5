"""Hardware eye trackers at the reading station.

``mcgip tracker-bridge`` (``bridge.py``) reads a tracker (``gazepoint.py``, ``tobii.py`` or
``simulated.py``) and sends screen-normalised gaze to the server's ``/ws/tracker`` relay
(``relay.py``), authenticated as the reader; the reader's open viewer page subscribes to the
relay with its "tracker" gaze source, maps the points through its viewport and streams them into
the session over ``/ws/gaze`` like any other source. See docs/gaze-sources.md.
"""
