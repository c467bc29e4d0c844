package api

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/airlock-dev/airlock/internal/auth"
)

var pathParamRE = regexp.MustCompile(`\{([a-z]+)\}`)

// OpenAPI builds the OpenAPI 3.1 document from the route table, so every
// route is described and no description outlives its route.
func (a *API) OpenAPI() map[string]any {
	var plurals []string
	for _, k := range a.Scheme.Kinds() {
		plurals = append(plurals, k.Plural)
	}
	problem := map[string]any{"description": "RFC 9457 problem details", "content": map[string]any{
		"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}},
	}}
	paths := map[string]any{}
	for _, rt := range a.routes {
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": operationID(rt),
			"responses": map[string]any{
				"200":     map[string]any{"description": "OK"},
				"default": problem,
			},
		}
		var params []any
		for _, m := range pathParamRE.FindAllStringSubmatch(rt.path, -1) {
			schema := map[string]any{"type": "string"}
			if m[1] == "resource" {
				schema["enum"] = plurals
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": schema})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch {
		case rt.rule.public:
			op["security"] = []any{}
		case rt.rule.action != "":
			op["x-airlock-roles"] = auth.AllowedRoles(rt.rule.action)
			op["x-airlock-action"] = rt.rule.action
		case rt.rule.verb != "":
			op["x-airlock-action"] = "by kind: " + rt.rule.verb
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "airlock API", "version": "v1 (" + a.Version + ")"},
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas": map[string]any{"Problem": map[string]any{"type": "object", "properties": map[string]any{
				"type": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"},
				"status": map[string]any{"type": "integer"}, "detail": map[string]any{"type": "string"},
				"errors": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			}}},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}
}

func operationID(rt route) string {
	p := pathParamRE.ReplaceAllString(rt.path, "$1")
	p = strings.NewReplacer("/api/v1/", "", "/", "_", "-", "_", ".", "_").Replace(strings.TrimPrefix(p, "/"))
	return strings.ToLower(rt.method) + "_" + p
}

func (a *API) openapi(w http.ResponseWriter, _ *http.Request, _ *call) error {
	return writeJSON(w, http.StatusOK, a.OpenAPI())
}
