"""Data: keypoint layouts, file IO, dataset readers, video, crops, DINOv2 features, demo corpus."""
