"""VALL-E: AR over the first codebook, NAR over the others."""
