"""Interpretability: semi-NMF features of MLP activations (Shafran, Geiger, Geva 2025) for every flaxzoo model.

capture (hidden activations of any MLP-like layer), snmf (the factorisation), hierarchical
(features of features), features (reading a feature's inputs and outputs), steering (adding a
feature to the hidden layer, alpha calibrated to a target KL), baselines (DiffMeans, TopK SAE, PCA).
"""
