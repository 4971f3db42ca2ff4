"""A host with a DRF view of its own and the dashboard mounted under /dash/: the schema must
describe the dashboard's endpoints only, at the paths the host gave them."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView


class HostView(APIView):
    def get(self, request):
        return Response({})


urlpatterns = [
    path("api/host-thing/", HostView.as_view()),
    path("dash/", include("celery_live.urls")),
]
