"""Reference classifiers: networks trained on *real* data that label synthetic images.

Every reference exposes the same interface (`ReferenceNet`): logits for recognizability and
a penultimate feature vector for diversity, so the metrics never care which backend runs.
"""
