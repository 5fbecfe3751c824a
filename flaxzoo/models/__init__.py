"""Model families (one file each) and the name registry."""
