"""One Lightning fit: ClassifierModule, build_trainer and its callbacks, the lean profiler."""
