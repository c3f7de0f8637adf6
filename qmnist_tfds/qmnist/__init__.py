"""The `qmnist` TFDS dataset folder."""
