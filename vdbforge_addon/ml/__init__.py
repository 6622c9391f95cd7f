"""Scoring: image metrics, model weights, the vision-language critic."""
