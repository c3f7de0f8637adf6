"""`python tests/tfds_alone_reads.py DATA_DIR`: TFDS alone, without `import qmnist_tfds`,
streams `test50k` of the qmnist build in DATA_DIR and reads it from its data source.

Prints the examples streamed, the source's length, whether every image and
`nist_index` agree, and the source's type (tests/test_one_build.py).
"""

import sys

import tensorflow_datasets as tfds

data_dir = sys.argv[1]
stream = list(tfds.as_numpy(tfds.load("qmnist", split="test50k", data_dir=data_dir)))
source = tfds.data_source("qmnist", split="test50k", data_dir=data_dir)
assert "qmnist_tfds" not in sys.modules
same = all((a["image"] == source[i]["image"]).all() and a["nist_index"] ==
           source[i]["nist_index"] for i, a in enumerate(stream))
print(len(stream), len(source), same, type(source).__name__)
