# Build all five images with one command from the repository root:
#   docker buildx bake -f deploy/docker/docker-bake.hcl            # local images
#   REGISTRY=registry.example.com/synscale TAG=0.1.0 \
#     docker buildx bake -f deploy/docker/docker-bake.hcl --push  # for a cluster
variable "REGISTRY" { default = "synscale" }
variable "TAG" { default = "0.1.0" }

group "default" {
  targets = ["prompter", "generator", "scorer", "trainer", "analyzer"]
}

target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
}

target "prompter" {
  inherits   = ["_common"]
  dockerfile = "services/prompter/Dockerfile"
  tags       = ["${REGISTRY}/prompter:${TAG}"]
}

target "generator" {
  inherits   = ["_common"]
  dockerfile = "services/generator/Dockerfile"
  tags       = ["${REGISTRY}/generator:${TAG}"]
}

target "scorer" {
  inherits   = ["_common"]
  dockerfile = "services/scorer/Dockerfile"
  tags       = ["${REGISTRY}/scorer:${TAG}"]
}

target "trainer" {
  inherits   = ["_common"]
  dockerfile = "services/trainer/Dockerfile"
  tags       = ["${REGISTRY}/trainer:${TAG}"]
}

target "analyzer" {
  inherits   = ["_common"]
  dockerfile = "services/analyzer/Dockerfile"
  tags       = ["${REGISTRY}/analyzer:${TAG}"]
}
