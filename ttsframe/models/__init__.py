"""Model families, one folder each (model code free of Lightning and OmegaConf)."""
