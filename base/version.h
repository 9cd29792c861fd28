#pragma once
// The one version of kbundle: both binaries' --version, the packages and the bundles' manifests.
// It is the project version of CMakeLists.txt, plus the git description when built from a checkout.

namespace kb {

const char* version();

}  // namespace kb
