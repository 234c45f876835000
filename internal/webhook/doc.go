// Package webhook is meshroll's revision-assignment admission webhook.
//
// When meshroll moves a workload to a new Istio revision it rewrites the pod
// template label istio.io/rev. The workload's owner does not know that, so the
// next deploy (kubectl apply, a CI pipeline) would send the old value back and
// silently undo the migration. This webhook closes that gap: for every workload
// an active MeshUpgrade covers, it rewrites the template's istio.io/rev to the
// revision currently assigned, so a deploy lands where the upgrade put it.
// Only the upgrade the workload's meshroll.io/upgrade label names is asked,
// and only while it runs, so a finished upgrade can never stamp its revision
// over a later one's move.
//
// The webhook is deliberately small and harmless when it misbehaves:
//   - it fails open (failurePolicy Ignore, a 2 s timeout, and the handler
//     itself never denies), so an outage delays nothing but the stamping;
//   - the API server only calls it for objects labelled meshroll.io/upgrade
//     (objectSelector), and the handler checks the same label again, so it
//     never touches objects outside an upgrade's selection;
//   - it decides from an in-memory Table the engine keeps current, so an
//     admission call costs no API request.
//
// Register/Unregister manage its MutatingWebhookConfiguration, EnsureCert the
// serving certificate kept in a Secret, and Serve the HTTPS listener.
package webhook
