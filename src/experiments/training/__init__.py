"""One Lightning fit: the ClassifierModule, the Trainer with this project's callbacks, and the lean profiler."""
