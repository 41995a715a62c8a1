"""`?limit=&offset=` pages answered as `{items, total}` (004's shape)."""
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class ItemsPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_paginated_response(self, data):
        return Response({"items": data, "total": self.count})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "total"],
            "properties": {"items": schema, "total": {"type": "integer", "minimum": 0}},
        }
