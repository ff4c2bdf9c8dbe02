################################################################################
# Network
################################################################################

output "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  value       = module.vpc.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets holding the nodes and pods."
  value       = module.vpc.private_subnets
}

################################################################################
# Cluster
################################################################################

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "HTTPS endpoint of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 PEM of the cluster CA, for kubeconfig files."
  value       = module.eks.cluster_certificate_authority_data
}

output "cluster_oidc_issuer_url" {
  description = "OIDC issuer of the cluster, for IAM roles for service accounts."
  value       = module.eks.cluster_oidc_issuer_url
}

output "cluster_update_kubeconfig_command" {
  description = "Command that writes a kubeconfig context for this cluster."
  value = join(" ", [
    "aws eks update-kubeconfig",
    "--region", data.aws_region.current.region,
    "--name", module.eks.cluster_name,
  ])
}

################################################################################
# Image registry
################################################################################

output "ecr_repository_url" {
  description = "Push the hello-platform image here; null when create_ecr_repository is false."
  value       = try(aws_ecr_repository.this[0].repository_url, null)
}
