"""What the notebooks report: baselines and controls, the report and its claims, subject-level
intervals, the paper's numbers, ablations, scaling curves, real-EEG scoring, generation metrics and figures."""
