"""Vision attention modules, one file per paper family; see ``vision.registry``."""
