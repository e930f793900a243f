"""EEG in: EDF files, the TCP montage, recordings and labels, preprocessing, the window store, the
simulated TUEV-style corpus, training datasets, real-EEG folders and folds."""
