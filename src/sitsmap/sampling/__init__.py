"""Sample selection and extraction: which ground-truth pixels train the model."""
