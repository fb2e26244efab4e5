"""Admin dashboard data: read-only gaze and pair statistics, and the retraining form's validation."""
