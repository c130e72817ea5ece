"""Training the seed's model: two-stage CLB-IMDN training, online collapse, DDP, export (`esr train`)."""
