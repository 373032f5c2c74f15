"""Real-data IO: keypoint layouts, pose and feature files, dataset readers, video, crops, DINOv2 features.

The demo's generated sign language lives apart, in `rvlf.synth`.
"""
