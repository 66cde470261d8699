"""lesionflow: dermoscopy lesion segmentation and 7-class classification, ISIC 2018 style."""

import os

__version__ = "0.1.0"

# TensorFlow prints a start-up banner (oneDNN, CPU instructions) from C++ when it is first imported,
# before any job can redirect it to its log; keep errors only, unless the user chose a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
