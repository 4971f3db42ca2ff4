# One image for every process of the Procfile (docker-compose.yml picks the line to run).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 CELERY_LIVE_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY Procfile .
COPY backend ./backend
COPY frontend ./frontend
WORKDIR /app/backend
# collectstatic signs nothing: a throwaway key lets the settings load with DEBUG off, and
# stays out of the image (the containers get theirs from the environment).
RUN mkdir -p /data && DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0
EXPOSE 8000
# Becomes the Procfile's line (exec: its pid gets the signals): web on 0.0.0.0:${PORT:-8000}.
CMD ["python", "-m", "celery_live.processes.procfile", "web"]
