"""``mocap batch``: a folder of clips through the per-clip pipeline. Entry: ``batch.run.run_batch``; the
stages are ``plan`` → ``state`` (resume) → ``pool`` / ``ray_backend`` running ``worker`` → ``report``."""
