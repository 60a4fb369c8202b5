"""Uploads to AWS: S3 objects (``aws.s3``) and EC2 images (``aws``), with boto3.

boto3 blocks, so every call runs in a thread and the worker's event loop stays
free for heartbeats and log lines.
"""
