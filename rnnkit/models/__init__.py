"""Task heads on top of the recurrent stack."""
