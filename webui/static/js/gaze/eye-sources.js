// Registers the eye-gaze sources (webcam, hardware tracker) with the source registry.
import './webcam.js';
import './tracker.js';
