# One image for every vsmmon role: worker, beat, serve, migrations.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini beat_schedule.py ./
COPY vsmmon ./vsmmon
COPY workers ./workers
COPY alembic ./alembic
# editable: the Alembic scripts stay beside the package, where `vsmmon db upgrade` finds them
RUN pip install --no-cache-dir -e '.[server]' && useradd --system --create-home vsmmon
USER vsmmon
ENV VSMMON_DATA_DIR=/home/vsmmon/data
ENTRYPOINT ["vsmmon"]
CMD ["--help"]
