"""Moving data between the object store and the job's folders: staging inputs, uploading outputs."""
