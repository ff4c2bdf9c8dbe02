output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "cluster_update_kubeconfig_command" {
  description = "Run this to point kubectl and helm at the new cluster."
  value       = module.eks.cluster_update_kubeconfig_command
}

output "ecr_repository_url" {
  description = "Where to push the hello-platform image."
  value       = module.eks.ecr_repository_url
}
