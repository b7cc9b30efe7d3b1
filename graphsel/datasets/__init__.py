"""Public datasets and the embedded synthetic default, as source/target logs."""
