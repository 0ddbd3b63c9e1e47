"""``--preview out.mp4``: the exported animation drawn over the source video and from the side, so a run can be
judged without opening Blender.

Modules: ``camera_view`` (skeleton and body silhouette reprojected onto the source frame through the solved
camera), ``side_view`` (a 3D view from the side: floor grid, path, planted feet), ``timeline`` (detection
confidence and person-lost spans), ``render`` (streams frames through the drawing and into ffmpeg).
"""
