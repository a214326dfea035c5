// Validates Istio and Gateway API objects against their CRD schemas with the
// @kubernetes-models validators (generated from the projects' CRDs).
// stdin: [{"where": "...", "doc": {...}}]; stdout: [{"where", "kind", "error"}] (error null when valid).
import * as istioNetworkingV1 from "@kubernetes-models/istio/networking.istio.io/v1";
import * as istioNetworkingV1alpha3 from "@kubernetes-models/istio/networking.istio.io/v1alpha3";
import * as istioExtensionsV1alpha1 from "@kubernetes-models/istio/extensions.istio.io/v1alpha1";
import * as gatewayV1 from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1";

const models = {
  "networking.istio.io/v1": istioNetworkingV1,
  "networking.istio.io/v1alpha3": istioNetworkingV1alpha3,
  "extensions.istio.io/v1alpha1": istioExtensionsV1alpha1,
  "gateway.networking.k8s.io/v1": gatewayV1,
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(({ where, doc }) => {
  const group = models[doc.apiVersion];
  const Model = group && group[doc.kind];
  if (!Model) return { where, kind: doc.kind, error: `no schema for ${doc.apiVersion} ${doc.kind}` };
  try {
    new Model(doc).validate();
    return { where, kind: doc.kind, error: null };
  } catch (e) {
    return { where, kind: doc.kind, error: e.message };
  }
});
process.stdout.write(JSON.stringify(out));
