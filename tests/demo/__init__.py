"""Behavioural tests of the bundled demo checkpoint, and the image analyser they use."""
