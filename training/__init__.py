"""rsmt_studio.training"""
