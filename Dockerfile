# Generated from models.yaml by `python -m compiler container-files`; edit the manifest, not this file.
# Build the repository first (`make repo`): model files (model.pt, model.pt2) are build outputs, not in git.
FROM nvcr.io/nvidia/tritonserver:26.11-py3
ENV AOTI_RUNTIME_CHECK_INPUTS=1
# what the pipelines' steps import, at the versions the build's proof ran
RUN pip install --no-cache-dir pillow==13.0.0 tokenizers==0.23.3
COPY Triton/models /models
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fs localhost:8000/v2/health/ready || exit 1
CMD ["tritonserver", "--model-repository=/models"]
