# CPU image: worker and ingest services. Build: docker build -t emostream .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# torch first, pinned, CPU build (a plain install would pull the CUDA build; DEVELOPERS.md)
RUN pip install --prefix=/install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml constraints.txt README.md ./
COPY emostream emostream
COPY ingest ingest
COPY worker worker
COPY model model
RUN pip install --prefix=/install -c constraints.txt .

FROM python:3.11-slim
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 emostream
USER emostream
WORKDIR /home/emostream
# the CPU encoders' ONNX files, built now so that a container starts warm
RUN emostream export-onnx
# the model weights ship inside the installed package (model/weights)
EXPOSE 9100 9101
ENTRYPOINT ["emostream"]
CMD ["worker"]
