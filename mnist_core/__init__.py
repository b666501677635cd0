"""MNIST Lab's core: data, models, training, preprocessing and figures, with no web framework.

Every page of the app calls into this package; a script, a test or a notebook can use it the same way.
Modules that need TensorFlow import it themselves, so `mnist_core.data` and `mnist_core.plots` stay light.
"""
