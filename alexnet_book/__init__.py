"""alexnet_book: the package behind the book "AlexNet, layer by layer".

The chapters import what they teach with from here: the output-size arithmetic
(``alexnet_book.shapes``), the paper's local response normalisation (``alexnet_book.lrn``),
the network itself in the paper's and torchvision's variants (``alexnet_book.model``), the
data sets and the paper's input pipeline (``alexnet_book.data``) and the paper's training
recipe (``alexnet_book.train``).
"""

from .data import DataBundle, load_data, make_loader
from .lrn import local_response_norm
from .model import VARIANTS, AlexNet, from_torchvision
from .shapes import conv_output_size, layer_table, pool_output_size
from .train import History, TrainConfig, TrainingDiverged, train

__version__ = "0.1.0"

__all__ = [
    "AlexNet",
    "VARIANTS",
    "from_torchvision",
    "conv_output_size",
    "pool_output_size",
    "layer_table",
    "local_response_norm",
    "DataBundle",
    "load_data",
    "make_loader",
    "TrainConfig",
    "History",
    "TrainingDiverged",
    "train",
    "__version__",
]
