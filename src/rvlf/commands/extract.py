"""`rvlf extract`: keypoints, hand/face crops and DINOv2 features from videos"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("extract", help="keypoints, hand/face crops and DINOv2 features from videos")
    p.set_defaults(func=not_ready("extract", "issue 4"))
