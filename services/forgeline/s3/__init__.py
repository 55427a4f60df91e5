"""An S3-compatible subset on Forgeline's own endpoint, over the blob store.

CodeBuild takes sources from S3 and puts artifacts there; with the embedded blob store
those buckets are local files, so Forgeline answers S3 itself (path-style addressing:
`/bucket/key`) for `aws s3 cp`, `aws s3 ls` and boto3's s3 client. A request is S3's
when its SigV4 credential scope names the `s3` service.
"""

from forgeline.s3.endpoint import S3Endpoint

__all__ = ["S3Endpoint"]
