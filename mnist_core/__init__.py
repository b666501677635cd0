"""MNIST Lab's core: data, models, training, preprocessing and figures, with no web framework.

Every page of the app calls into this package; a script, a test or a notebook can use it the same way.
Modules that need TensorFlow import it themselves, so `mnist_core.data` and `mnist_core.plots` stay light.
"""

import os as _os

from mnist_core.hardware import tensorflow_thread_settings as _tensorflow_thread_settings

# Before any module here imports TensorFlow: a container's CPU quota sizes its thread pools (hardware.py says why).
for _name, _value in _tensorflow_thread_settings().items():
    _os.environ.setdefault(_name, _value)
