"""What every layer uses and nothing of EEG: run-time settings, run-folder files, fingerprints,
classification metrics and figure output."""
