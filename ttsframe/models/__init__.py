"""Model families, one folder each (model code free of Lightning and OmegaConf).

`ttsframe/models/<family>/` holds everything that is the family's own and exports one
`SPEC` (`ttsframe.models.spec.FamilySpec`); `ttsframe.models.registry.FAMILIES` lists the
families. No family imports another: what two share lives in `ttsframe/modules/` (blocks) or
`ttsframe/inference/` (synthesis requests, prompts, checkpoint I/O).
"""
