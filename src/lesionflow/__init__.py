"""lesionflow: dermoscopy lesion segmentation and 7-class classification, ISIC 2018 style."""

__version__ = "0.1.0"
