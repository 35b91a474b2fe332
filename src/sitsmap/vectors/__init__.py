"""Ground-truth vectors: checks and corrections (check-db), preparation, split."""
