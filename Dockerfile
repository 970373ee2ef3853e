# The harness inside vLLM's official OpenAI-server image (NVIDIA GPUs). Build and run:
#   docker build -t harness .
#   docker run --gpus all --ipc=host \
#       -v "$PWD/configs:/work/configs" -v "$PWD/results:/work/results" \
#       -v ~/.cache/huggingface:/root/.cache/huggingface -e HF_TOKEN \
#       harness run configs/llama-3.1-8b-h100.yaml
# The container runs in /work: mounting the checkout's configs/ there makes an edited config,
# traffic profile or trace take effect without a rebuild (the copy below is only the default),
# and results/ keeps the results on the host.
# Keep the tag pinned: results record the vLLM version they were measured with.
FROM vllm/vllm-openai:v0.33.0

WORKDIR /opt/harness
COPY pyproject.toml README.md ./
COPY harness ./harness
# vLLM is already in the image's Python: install the harness without the gpu/cpu extras so the
# image's own vLLM (and its torch/CUDA build) stays untouched.
RUN uv pip install --system --no-cache /opt/harness

WORKDIR /work
COPY configs ./configs
ENV PYTHONUNBUFFERED=1
# The base image's entrypoint is `vllm serve`; this image's is the harness, which starts vLLM
# itself (same interpreter) for every cell and stops it when the cell is measured.
ENTRYPOINT ["harness"]
CMD ["--help"]
STOPSIGNAL SIGTERM
